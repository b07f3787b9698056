"""The command-line application: shared console helpers and option types (console), the
verbs' logic over a chain session (commands), the market verbs (market_cli), and the demo
(demo, demo_market). Imported only by the top-level cli.py.

May import: every layer below it, solvers and challengers included.
"""
