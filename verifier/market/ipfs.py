"""Content on IPFS through its HTTP interfaces, cached in a local content store (docs/SPEC.md 8.1).

Publishing adds and pins a file through a node's RPC API (`POST /api/v0/add`, Kubo's API, which
js-ipfs also serves) as one raw block, so the node names it by the same CIDv1 `cid_of` computes.
Fetching asks a trustless gateway for that block (`GET /ipfs/{cid}?format=raw`, Accept
`application/vnd.ipld.raw`), or the node's API when no gateway is given. A gateway is not
trusted: every fetched byte is hashed against the CID before it is kept or used, so any gateway,
public or local, will do.
"""

from __future__ import annotations

import json
import os
import secrets
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import quote, urlsplit

from verifier.market.content import (
    ContentError,
    ContentMissing,
    ContentStore,
    _check_cid,
    cid_of,
)

API_ENV = "BISECTML_IPFS_API"
GATEWAY_ENV = "BISECTML_IPFS_GATEWAY"
# The largest chunk Kubo's chunker takes; a file up to this size is one raw block, named by the
# sha256 of the whole file. bisectml's files stay below it (SPEC 8.1: at most 512 KiB + 12 bytes).
MAX_BLOCK = 1 << 20
TIMEOUT = 30.0  # seconds per request; a gateway that lacks a block may wait for peers forever
RAW_BLOCK = "application/vnd.ipld.raw"


def _base_url(url: str, option: str, env: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ContentError(f"{option} / {env} must be an http(s) URL such as http://127.0.0.1:5001; got '{url}'.")
    base = url.rstrip("/")
    return base.removesuffix("/api/v0").removesuffix("/ipfs")


class IpfsContentStore(ContentStore):
    """Files named by content id, published to an IPFS node and fetched from a gateway; the local
    directory caches what was fetched, so each file crosses the network once. `has` says whether
    a file is cached here; `get` fetches what is not."""

    def __init__(
        self, root: Path | None = None, api: str | None = None, gateway: str | None = None, timeout: float = TIMEOUT
    ) -> None:
        super().__init__(root)
        if not api and not gateway:
            raise ContentError(f"an IPFS store needs --ipfs-api ({API_ENV}) or --ipfs-gateway ({GATEWAY_ENV}).")
        self.api = _base_url(api, "--ipfs-api", API_ENV) if api else None
        self.gateway = _base_url(gateway, "--ipfs-gateway", GATEWAY_ENV) if gateway else None
        self.timeout = timeout

    # -- publishing -------------------------------------------------------------------------

    def put(self, data: bytes) -> str:
        cid = cid_of(data)
        if self.api is None:
            raise ContentError(
                f"publishing {cid} needs an IPFS node's RPC API to add and pin it; pass --ipfs-api (or set {API_ENV})."
            )
        if len(data) > MAX_BLOCK:
            raise ContentError(f"a file of {len(data)} bytes does not fit one IPFS block ({MAX_BLOCK} bytes); split it.")
        named = self._add(data, cid)
        if named != cid:
            raise ContentError(
                f"the IPFS node at {self.api} named the file {named}, not {cid}; it must add one raw CIDv1 block "
                "(Kubo or a compatible node)."
            )
        return super().put(data)

    def _add(self, data: bytes, cid: str) -> str:
        boundary = "bisectml" + secrets.token_hex(12)
        body = (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{cid}"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n"
        ).encode() + data + f"\r\n--{boundary}--\r\n".encode()
        query = (
            f"cid-version=1&raw-leaves=true&hash=sha2-256&chunker=size-{MAX_BLOCK}&pin=true&cid-base=base32&quieter=true"
        )
        url = f"{self.api}/api/v0/add?{query}"
        reply = self._request(url, body, {"Content-Type": f"multipart/form-data; boundary={boundary}"}, cid, "add")
        try:
            # one JSON object per line (progress lines first); the last names the file
            return str(json.loads(reply.decode().strip().splitlines()[-1])["Hash"])
        except (ValueError, IndexError, KeyError, UnicodeDecodeError):
            raise ContentError(f"the IPFS node at {self.api} answered add with no content id; is it an IPFS RPC API?") from None

    # -- fetching ---------------------------------------------------------------------------

    def get(self, cid: str) -> bytes:
        _check_cid(cid)
        path = self.root / cid
        if path.is_file():
            cached = path.read_bytes()
            if cid_of(cached) == cid:
                return cached
            path.unlink(missing_ok=True)  # a damaged cache entry is fetched again
        data = self._fetch(cid)
        super().put(data)
        return data

    def _fetch(self, cid: str) -> bytes:
        if self.gateway is not None:
            url, body, source = f"{self.gateway}/ipfs/{quote(cid)}?format=raw", None, f"IPFS gateway at {self.gateway}"
        else:
            url, body, source = f"{self.api}/api/v0/block/get?arg={quote(cid)}", b"", f"IPFS node at {self.api}"
        data = self._request(url, body, {"Accept": RAW_BLOCK}, cid, "fetch")
        if cid_of(data) != cid:
            raise ContentError(
                f"the {source} served {len(data)} bytes that do not hash to {cid}; refused and not kept. "
                "Use another gateway (--ipfs-gateway)."
            )
        return data

    # -- one HTTP request, every failure one line -----------------------------------------

    def _request(self, url: str, body: bytes | None, headers: dict[str, str], cid: str, verb: str) -> bytes:
        base = self.gateway if body is None else self.api
        option, env = ("--ipfs-gateway", GATEWAY_ENV) if body is None else ("--ipfs-api", API_ENV)
        req = urllib.request.Request(url, body, headers, method="GET" if body is None else "POST")
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as r:
                data = r.read(MAX_BLOCK + 1)
        except urllib.error.HTTPError as e:
            detail = _error_message(e)
            if verb == "fetch" and e.code in (404, 410):
                raise ContentMissing(
                    f"{base} does not have {cid} (HTTP {e.code}); publish it with --ipfs-api, or use a gateway that has it."
                ) from None
            raise ContentError(f"{base} refused to {verb} {cid} (HTTP {e.code}{detail}); check {option}.") from None
        except urllib.error.URLError as e:
            if not isinstance(e.reason, TimeoutError):
                raise ContentError(f"cannot reach {base} ({e.reason}); start the IPFS node or fix {option} / {env}.") from None
            raise self._timed_out(base, verb, cid, option) from None
        except TimeoutError:
            raise self._timed_out(base, verb, cid, option) from None
        except OSError as e:  # the connection dropped mid-answer
            raise ContentError(f"{base} failed while answering ({type(e).__name__}: {e}); retry or fix {option}.") from None
        if len(data) > MAX_BLOCK:
            raise ContentError(f"{base} answered more than {MAX_BLOCK} bytes for {cid}; refused. Check {option}.")
        return data

    def _timed_out(self, base: str, verb: str, cid: str, option: str) -> ContentError:
        return ContentError(
            f"{base} did not {verb} {cid} within {self.timeout:g} s; check that the node runs and has the content, "
            f"or use another with {option}."
        )


def _error_message(e: urllib.error.HTTPError) -> str:
    """The node's own one-line reason, when its error body carries one (Kubo: {"Message": ...})."""
    try:
        message = json.loads(e.read(4096).decode()).get("Message", "")
    except (ValueError, OSError, AttributeError, UnicodeDecodeError):
        return ""
    return f": {' '.join(str(message).split())[:160]}" if message else ""


def ipfs_settings(api: str | None = None, gateway: str | None = None) -> tuple[str | None, str | None]:
    """The IPFS endpoints to use: the given ones, else the environment's."""
    return api or os.environ.get(API_ENV) or None, gateway or os.environ.get(GATEWAY_ENV) or None


def content_store(
    content_dir: Path | None = None, ipfs_api: str | None = None, ipfs_gateway: str | None = None
) -> ContentStore:
    """The store a command or daemon uses: IPFS when an API or gateway is given (or set in
    BISECTML_IPFS_API / BISECTML_IPFS_GATEWAY), caching in `content_dir`; else the local directory."""
    api, gateway = ipfs_settings(ipfs_api, ipfs_gateway)
    if api or gateway:
        return IpfsContentStore(content_dir, api=api, gateway=gateway)
    return ContentStore(content_dir)


__all__ = [
    "API_ENV",
    "GATEWAY_ENV",
    "IpfsContentStore",
    "content_store",
    "ipfs_settings",
]
