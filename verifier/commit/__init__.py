"""Commitments, byte for byte as docs/SPEC.md sections 1-3 specify: keccak256 Merkle trees
with domain-separated leaves (merkle), tensor commitments and element openings, state roots
and slot tables, node descriptors and the graph root, dataset roots and program ids
(commitments).

May import: verifier.core.
"""
