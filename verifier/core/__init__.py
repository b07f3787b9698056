"""The vocabulary every layer speaks: the error hierarchy (errors), element types and tensor
types with their wrapping rules (dtypes, SPEC 1.1-1.2), and the data directory (paths).

Imports nothing of bisectml's. dtypes lives here, not in engine, because the commitments
(one layer up) encode tensor types byte for byte and the engine computes with them.
"""
