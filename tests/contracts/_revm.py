"""Run a Vyper contract's real bytecode in revm (pyrevm) for high-volume differential tests.

titanoboa executes on py-evm at roughly one million gas per second, and a one-step call costs
10k-60k gas, so walking every term of hundreds of reductions per op there takes many minutes.
revm (the EVM of reth, foundry and anvil) runs the same bytecode about a hundred times faster.
`RevmContract` compiles with titanoboa (the same compiler and settings as the boa-deployed
contracts), deploys the init code in a pyrevm EVM of the compiler's target fork, and exposes
every ABI function as a method taking and returning the same Python values as a titanoboa
contract (bytes32 as bytes, structs as tuples), so `_onestep.check_node` accepts either. The
contract tests also run a sample of cases through titanoboa, so both EVMs are pinned to agree.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import boa
from eth_abi import decode, encode
from eth_utils import function_signature_to_4byte_selector
from pyrevm import EVM
from vyper.compiler.output import build_abi_output
from vyper.evm.opcodes import DEFAULT_EVM_VERSION

DEPLOYER = "0x" + "d0" * 20
CALLER = "0x" + "ca" * 20
ERROR_SELECTOR = bytes.fromhex("08c379a0")  # Error(string)


class RevmRevert(Exception):
    """A call reverted; `reason` is the decoded Error(string) message ("" if none)."""

    def __init__(self, reason: str, gas_used: int | None) -> None:
        super().__init__(reason or "reverted without a reason")
        self.reason = reason
        self.gas_used = gas_used


def _abi_type(t: dict[str, Any]) -> str:
    if t["type"].startswith("tuple"):
        return "(" + ",".join(_abi_type(c) for c in t["components"]) + ")" + t["type"][len("tuple") :]
    return t["type"]


def _revert_reason(message: str) -> str:
    """pyrevm raises RuntimeError('Revert { gas_used: N, output: 0x.. }')."""
    marker = "output: 0x"
    if marker not in message:
        return ""
    raw = bytes.fromhex(message.split(marker, 1)[1].split()[0].rstrip("}").strip())
    if raw[:4] != ERROR_SELECTOR:
        return ""
    return decode(["string"], raw[4:])[0]


class RevmContract:
    """A titanoboa-compiled Vyper contract deployed in its own pyrevm EVM."""

    def __init__(self, path: str) -> None:
        data = boa.load_partial(path).compiler_data
        evm_version = data.settings.evm_version or DEFAULT_EVM_VERSION
        self.evm = EVM(spec_id=evm_version.upper())
        self.address = self.evm.deploy(DEPLOYER, data.bytecode, gas=30_000_000)
        # revm keeps analysed code padded with zeros past the end; the deployed code is its prefix
        self.runtime = bytes(data.bytecode_runtime)
        assert bytes(self.evm.get_code(self.address)).startswith(self.runtime)
        self.runtime_size = len(self.runtime)
        #: gas of the last successful call, as revm counts it (intrinsic 21,000 + calldata included)
        self.last_gas: int | None = None
        for fn in build_abi_output(data):
            if fn.get("type") == "function":
                setattr(self, fn["name"], self._method(fn))

    def _method(self, fn: dict[str, Any]) -> Callable[..., Any]:
        ins = [_abi_type(i) for i in fn["inputs"]]
        outs = [_abi_type(o) for o in fn["outputs"]]
        selector = function_signature_to_4byte_selector(f"{fn['name']}({','.join(ins)})")

        def call(*args: Any) -> Any:
            calldata = selector + encode(ins, list(args))
            try:
                out = self.evm.message_call(CALLER, self.address, calldata, is_static=True)
            except RuntimeError as e:
                raise RevmRevert(_revert_reason(str(e)), None) from None
            result = self.evm.result
            self.last_gas = None if result is None else result.gas_used
            values = decode(outs, out)
            return values[0] if len(values) == 1 else values

        call.__name__ = fn["name"]
        return call


__all__ = ["RevmContract", "RevmRevert"]
