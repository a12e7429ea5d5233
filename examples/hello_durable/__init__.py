"""Hello, durable: validate an order, charge it, wait 24 hours, send the confirmation."""
