"""Cut an ONNX model in two at a node-name prefix, reading and writing its protobuf directly.

A piper voice is one graph: the text encoder, duration predictor and flow make a
latent spectrogram ``z`` (about 11.6 ms of audio a frame), and the decoder
(HiFi-GAN, the nodes named ``/dec/...``) turns it into samples. Cut at the
decoder, the first part runs once per sentence and the decoder can run on the
first frames alone, so the first audio of a long sentence goes out without
waiting for the rest (``appliance.voice.tts``).

Only the few fields that decide the cut are read (a node's inputs, outputs,
name and type, an initializer's name, the graph's inputs and outputs); every
other byte is copied as it was. ``onnx`` itself is not a dependency of the box
for this one job.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from appliance.voice.errors import VoiceError

# ModelProto.graph; GraphProto.node/initializer/input/output/value_info/sparse_initializer;
# NodeProto.input/output/name/op_type; TensorProto.name; ValueInfoProto.name.
_MODEL_GRAPH = 7
_G_NODE, _G_INIT, _G_INPUT, _G_OUTPUT, _G_VALUE_INFO, _G_SPARSE = 1, 5, 11, 12, 13, 15
_N_INPUT, _N_OUTPUT, _N_NAME, _N_OP = 1, 2, 3, 4
_T_NAME = 8
_V_NAME = 1
_FLOAT = 1  # TensorProto.FLOAT


class SplitError(VoiceError):
    """The bytes are not a model this module can cut."""


@dataclass
class Split:
    front: bytes  # the model up to the cut: its outputs are ``boundary``
    back: bytes  # the rest: its inputs are ``boundary``, its outputs the model's
    boundary: list[str]


@dataclass
class _Field:
    number: int
    start: int  # the field's first byte (its key)
    payload: slice  # length-delimited fields only; else empty


@dataclass
class _Node:
    raw: memoryview
    name: str
    op: str
    inputs: list[str]
    outputs: list[str]


def split(model: bytes, prefix: str) -> Split | None:
    """``model`` cut before the nodes whose names start with ``prefix``; None when none do.

    The back also takes every node that reads, directly or not, what the prefixed
    nodes make. Raises :class:`SplitError` when the bytes are not a model it can cut.
    """
    buf = memoryview(model)
    top = list(_fields(buf, 0, len(buf)))
    graphs = [f for f in top if f.number == _MODEL_GRAPH]
    if len(graphs) != 1:
        raise SplitError("not an ONNX model: no single graph")
    g = graphs[0].payload
    kept_top = [bytes(buf[f.start:_end(top, i, len(buf))]) for i, f in enumerate(top)
                if f.number != _MODEL_GRAPH]
    gfields = list(_fields(buf, g.start, g.stop))
    raw = {i: buf[f.start:_end(gfields, i, g.stop)] for i, f in enumerate(gfields)}
    if any(f.number == _G_SPARSE for f in gfields):
        raise SplitError("sparse initializers are not supported")

    nodes = [_node(raw[i], buf[f.payload]) for i, f in enumerate(gfields) if f.number == _G_NODE]
    # The back: the prefixed nodes and every node after them that reads what they make
    # (ONNX lists nodes in topological order).
    made_in_back: set[str] = set()
    back_nodes: list[_Node] = []
    front_nodes: list[_Node] = []
    for n in nodes:
        if n.name.startswith(prefix) or any(i in made_in_back for i in n.inputs):
            back_nodes.append(n)
            made_in_back.update(n.outputs)
        else:
            front_nodes.append(n)
    if not back_nodes:
        return None
    inits = {_name_of(buf[f.payload], _T_NAME): raw[i]
             for i, f in enumerate(gfields) if f.number == _G_INIT}
    # Constants the back reads from the front are copied into the back, not passed over.
    constants = {o: n for n in front_nodes if n.op == "Constant" for o in n.outputs}
    copied = [constants[i] for i in dict.fromkeys(i for n in back_nodes for i in n.inputs)
              if i in constants]
    back_nodes = copied + back_nodes
    made_in_back |= {o for n in copied for o in n.outputs}
    boundary = list(dict.fromkeys(i for n in back_nodes for i in n.inputs
                                  if i and i not in made_in_back and i not in inits))
    if not boundary:
        raise SplitError(f"the nodes under {prefix!r} read nothing from the rest")

    def infos(number: int) -> dict[str, bytes]:
        return {_name_of(buf[f.payload], _V_NAME): bytes(buf[f.payload])
                for f in gfields if f.number == number}

    inputs, outputs, value_info = infos(_G_INPUT), infos(_G_OUTPUT), infos(_G_VALUE_INFO)

    def boundary_info(name: str) -> bytes:
        known = inputs.get(name) or value_info.get(name)
        return known if known is not None and _has_type(known) else _float_tensor_info(name)

    others = [bytes(raw[i]) for i, f in enumerate(gfields)
              if f.number not in (_G_NODE, _G_INIT, _G_INPUT, _G_OUTPUT, _G_VALUE_INFO)]

    def graph(part: list[_Node], ins: list[bytes], outs: list[bytes]) -> bytes:
        used = {i for n in part for i in n.inputs}
        body = b"".join([*(bytes(n.raw) for n in part),
                         *(bytes(v) for k, v in inits.items() if k in used),
                         *(_framed(_G_INPUT, v) for v in ins),
                         *(_framed(_G_OUTPUT, v) for v in outs), *others])
        return b"".join([*kept_top, _framed(_MODEL_GRAPH, body)])

    front_used = {i for n in front_nodes for i in n.inputs}
    front = graph(front_nodes,
                  [v for k, v in inputs.items() if k in front_used and k not in inits],
                  [*(boundary_info(b) for b in boundary),
                   *(v for k, v in outputs.items() if k not in made_in_back)])
    back = graph(back_nodes, [boundary_info(b) for b in boundary],
                 [v for k, v in outputs.items() if k in made_in_back])
    return Split(front=front, back=back, boundary=boundary)


def _end(fields: list[_Field], i: int, stop: int) -> int:
    return fields[i + 1].start if i + 1 < len(fields) else stop


def _fields(buf: memoryview, pos: int, stop: int) -> Iterator[_Field]:
    while pos < stop:
        start = pos
        key, pos = _read_varint(buf, pos)
        number, wire = key >> 3, key & 7
        payload = slice(pos, pos)
        if wire == 0:
            _, pos = _read_varint(buf, pos)
        elif wire == 1:
            pos += 8
        elif wire == 2:
            length, pos = _read_varint(buf, pos)
            payload = slice(pos, pos + length)
            pos += length
        elif wire == 5:
            pos += 4
        else:
            raise SplitError(f"unsupported protobuf wire type {wire} at byte {start}")
        if pos > stop or number == 0:
            raise SplitError(f"truncated or corrupt protobuf at byte {start}")
        yield _Field(number, start, payload)


def _read_varint(buf: memoryview, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if pos >= len(buf) or shift > 63:
            raise SplitError(f"truncated varint at byte {pos}")
        b = buf[pos]
        pos += 1
        value |= (b & 0x7F) << shift
        if not b & 0x80:
            return value, pos
        shift += 7


def _node(raw: memoryview, body: memoryview) -> _Node:
    inputs: list[str] = []
    outputs: list[str] = []
    name = op = ""
    for f in _fields(body, 0, len(body)):
        text = bytes(body[f.payload]).decode("utf-8", "replace")
        if f.number == _N_INPUT:
            inputs.append(text)
        elif f.number == _N_OUTPUT:
            outputs.append(text)
        elif f.number == _N_NAME:
            name = text
        elif f.number == _N_OP:
            op = text
    return _Node(raw, name, op, inputs, outputs)


def _name_of(body: memoryview, number: int) -> str:
    for f in _fields(body, 0, len(body)):
        if f.number == number:
            return bytes(body[f.payload]).decode("utf-8", "replace")
    return ""


def _has_type(info: bytes) -> bool:
    view = memoryview(info)
    return any(f.number == 2 for f in _fields(view, 0, len(view)))


def _float_tensor_info(name: str) -> bytes:
    """A graph input/output entry: ``name``, a float tensor of any shape."""
    tensor = _key(1, 0) + _varint(_FLOAT)
    return _framed(1, name.encode()) + _framed(2, _framed(1, tensor))


def _framed(number: int, payload: bytes) -> bytes:
    return _key(number, 2) + _varint(len(payload)) + payload


def _key(number: int, wire: int) -> bytes:
    return _varint(number << 3 | wire)


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        b = value & 0x7F
        value >>= 7
        if value:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)
