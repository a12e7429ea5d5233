"""Lambda entry points of the SAM templates in this directory (copied to the bundle root).

Durable execution service (``*-service.yaml``)::

    tour_service, order_service          book_tour / process_order .lambda_handler

Plain Lambda with DynamoDB (``*-dynamodb.yaml``; table from ``$DURABLE_TABLE``)::

    tour_dynamodb, order_dynamodb        dynamodb_handler(...): start or resume one execution
    sweeper                              sweeper_handler(): invoke ``$DURABLE_FUNCTION_NAME``
                                         for each due execution (scheduled)
    callback                             callback_handler(): complete a callback by token

Nothing here makes a boto3 client or a store at import: each handler makes its own on the
first invocation and reuses it while the container lives.
"""

from __future__ import annotations

from durable_core.aws_lambda import (
    callback_handler,
    dynamodb_handler,
    sweeper_handler,
)
from examples.order_processing.saga import process_order
from examples.tour_booking.saga import book_tour

tour_service = book_tour.lambda_handler  # the same as durable_handler(book_tour)
order_service = process_order.lambda_handler

tour_dynamodb = dynamodb_handler(book_tour)
order_dynamodb = dynamodb_handler(process_order)
sweeper = sweeper_handler()
callback = callback_handler()
