"""The court's client side: contract artifacts, deployment and bindings (chain), a local anvil
for tests and benchmarks (devnet), the game player that derives every honest move from a
trace (game), the driver that plays moves and tasks on a chain (play), and Tasks.vy's states
and the claim commitment (states).

May import: verifier.core, verifier.commit.commitments, verifier.engine, onnx_models.
"""
