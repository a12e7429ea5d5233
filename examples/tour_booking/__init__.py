"""Tour booking: book a flight, a hotel and an airport car as a saga; undo on failure.

Run ``python -m examples.tour_booking --fail-car`` from the repository root.
"""
