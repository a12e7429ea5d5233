"""Order processing, async: the order saga as ``@saga async def`` over async provider clients.

The same saga as :mod:`examples.order_processing` (validate → charge → reserve → confirm →
wait for the shipper, rolled back on missing stock or a shipper that fails or never
answers), written against an async HTTP client whose calls take real (simulated) time, so
many orders can wait on their providers side by side on one event loop.

Run ``python -m examples.order_processing_async --confirm`` from the repository root
(``saga.AsyncSagaContext``: ``await s.step(...)``).
"""
