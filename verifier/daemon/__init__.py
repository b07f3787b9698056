"""The machinery the solver and the watchtower share, one concern a module: chain records and
logs (records), the intent store (store), sending with dry-runs, reconciling and fee bumps
(sender), the programs served (registry), their traces (traces), and the tick loop with
process control (loop).

May import: verifier.core, verifier.commit.commitments, verifier.engine, onnx_models, verifier.court,
verifier.market.client.
"""
