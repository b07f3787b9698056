"""bisectml's shared core, in layers; a layer imports only the layers below it.

    core      errors, element types, the data directory          (imports nothing of ours)
    commit    Merkle trees; tensor, state, graph and program commitments
    engine    ops, graph loading, programs, traces, compiled steps, fast kernels
    (onnx_models, the program builders, sit here: above engine, below court)
    court     contract artifacts and bindings, local devnet, the game player and its driver
    market    the market's client, its economics (SPEC 8.5) and the content store
    daemon    the machinery of the solver and watchtower daemons
    (solvers, challengers: the two daemons)
    app       the command-line application: commands, market verbs, the demo
    (cli.py: the `bisectml` command)

docs/ARCHITECTURE.md tells where each concern lives; tests/test_layers.py enforces the order
and that no import circle exists.
"""
