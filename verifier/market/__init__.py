"""The market's client side (docs/SPEC.md section 8): the client of Market.vy and the
rebuilding of a round's programs from the chain (client), the Python twin of the payout rules
(economics), and the content store with IPFS CIDv1 ids (content).

May import: verifier.core, verifier.commit.commitments, verifier.engine, onnx_models, verifier.court.
"""
