"""Order processing: validate → charge → reserve → confirm → wait for the shipper, as a saga.

Run ``python -m examples.order_processing`` from the repository root.
"""
