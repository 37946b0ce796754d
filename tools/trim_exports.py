"""Drop the proxy-wasm callbacks a filter does not use from its module's exports.

    python3 tools/trim_exports.py IN.wasm OUT.wasm

Envoy's proxy-wasm host calls into the VM only through the callbacks a module exports: for a
missing `proxy_on_response_body`, `proxy_on_log`, … it goes on as if the filter had answered
`Continue`, and a missing `proxy_on_done` reads as done (proxy-wasm-cpp-host, src/context.cc).
The Rust SDK exports every callback whatever the filter implements, so each filter would pay a
crossing into its VM for every callback of every request. `llmgw_wasm_host::export_filter!`
names the exports its filter does without in the custom section `llmgw.unused_exports` (one per
line, from the filter's `FilterRoot::UNUSED_CALLBACKS`); this removes them and that section.
`wasm-opt` then drops the code only they reached.

Only the export section and that custom section change (WebAssembly core spec, binary format:
<https://webassembly.github.io/spec/core/binary/modules.html#binary-module>). A module without
the section, or naming an export it does not have, is refused: a renamed SDK callback or a
module built without the macro cannot slip through silently.
"""

from __future__ import annotations

import sys
from pathlib import Path

CUSTOM_SECTION = 0
EXPORT_SECTION = 7
UNUSED = b"llmgw.unused_exports"


def read_uleb(data: bytes, pos: int) -> tuple[int, int]:
    value, shift = 0, 0
    while True:
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, pos
        shift += 7


def uleb(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if not value:
            out.append(byte)
            return bytes(out)
        out.append(byte | 0x80)


def sections(module: bytes):
    """(id, whole section bytes, content start, content end) of each section."""
    if module[:4] != b"\0asm":
        raise ValueError("not a WebAssembly module")
    pos = 8
    while pos < len(module):
        size, body = read_uleb(module, pos + 1)
        yield module[pos], module[pos:body + size], body, body + size
        pos = body + size


def custom_name(module: bytes, body: int) -> tuple[bytes, int]:
    length, at = read_uleb(module, body)
    return module[at:at + length], at + length


def trim(module: bytes) -> tuple[bytes, list[str]]:
    drop: set[str] | None = None
    for section_id, _, body, end in sections(module):
        if section_id == CUSTOM_SECTION:
            name, at = custom_name(module, body)
            if name == UNUSED:
                drop = set(module[at:end].decode().split())
    if drop is None:
        raise ValueError(f"no custom section {UNUSED.decode()} (built without export_filter!?)")
    out = bytearray(module[:8])
    dropped = []
    for section_id, whole, body, end in sections(module):
        if section_id == CUSTOM_SECTION and custom_name(module, body)[0] == UNUSED:
            continue
        if section_id != EXPORT_SECTION:
            out += whole
            continue
        count, at = read_uleb(module, body)
        kept = []
        for _ in range(count):
            start = at
            name_len, at = read_uleb(module, at)
            name = module[at:at + name_len].decode()
            at += name_len + 1  # the export's kind
            _, at = read_uleb(module, at)  # its index
            if name in drop:
                dropped.append(name)
            else:
                kept.append(module[start:at])
        content = uleb(len(kept)) + b"".join(kept)
        out += bytes([EXPORT_SECTION]) + uleb(len(content)) + content
    if missing := drop - set(dropped):
        raise ValueError(f"not exported: {', '.join(sorted(missing))}")
    return bytes(out), dropped


def main() -> None:
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    source, target = Path(sys.argv[1]), Path(sys.argv[2])
    try:
        trimmed, _ = trim(source.read_bytes())
    except (ValueError, IndexError, UnicodeDecodeError) as err:
        sys.exit(f"trim_exports: {source}: {err}")
    target.write_bytes(trimmed)


if __name__ == "__main__":
    main()
