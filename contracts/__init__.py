"""The Vyper sources of bisectml's contracts, and their compiled artifacts (artifacts.json)."""
