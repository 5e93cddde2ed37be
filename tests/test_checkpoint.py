"""Checkpoints: round trip on MicroPython and CPython, every kind of damage
detected, and a write cut short at any byte never loses the last good one."""
import array
import os
import random
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "python"))
from qtrain import checkpoint  # noqa: E402

STATE = {
    "w": bytearray(range(200)),
    "scale": array.array("f", [0.5, 0.25]),
    "acc": array.array("i", [-5, 7, 1 << 30]),
    "step": 12345,
    "ema": 0.1,
    "name": "vae",
}


def _same(a, b):
    assert sorted(a) == sorted(b)
    for k in a:
        va, vb = a[k], b[k]
        if hasattr(va, "typecode") or isinstance(va, (bytes, bytearray)):
            assert bytes(va) == bytes(vb), k
        elif isinstance(va, float):
            assert abs(va - vb) < 1e-12, k
        else:
            assert va == vb, k


def test_round_trip_cpython(tmp_path):
    p = str(tmp_path / "c.qtc")
    checkpoint.save(p, STATE, seq=3)
    state, seq = checkpoint.load(p)
    assert seq == 3
    _same(STATE, state)


def test_load_into_preallocated_buffers(tmp_path):
    p = str(tmp_path / "c.qtc")
    checkpoint.save(p, STATE, seq=1)
    into = {"w": bytearray(200), "scale": array.array("f", [0, 0])}
    w_id = id(into["w"])
    state, _ = checkpoint.load(p, into=into)
    assert id(state["w"]) == w_id and bytes(state["w"]) == bytes(STATE["w"])
    bad = {"w": bytearray(199)}
    with pytest.raises(checkpoint.CheckpointError, match="'w' has 200 bytes"):
        checkpoint.load(p, into=bad)


def test_items_are_saved_with_the_state(tmp_path):
    """save(items=...): entries named as they are written (the training
    loop's model buffers) load as if they had been in the dict; items()
    giving other entries on its second pass is refused."""
    p = str(tmp_path / "c.qtc")
    scalars = {k: v for k, v in STATE.items() if isinstance(v, (int, float, str))}
    buffers = [(k, v) for k, v in STATE.items() if k not in scalars]
    checkpoint.save(p, scalars, seq=4, items=lambda: iter(buffers))
    state, seq = checkpoint.load(p)
    assert seq == 4
    _same(STATE, state)
    passes = []

    def shrinking():
        passes.append(1)
        return iter(buffers[:3 - len(passes)])
    with pytest.raises(ValueError, match="items"):
        checkpoint.save(p, scalars, seq=5, items=shrinking)
    assert checkpoint.load(p)[1] == 4   # the last good one


@pytest.mark.parametrize("damage", ["truncate", "flip", "magic", "version", "empty"])
def test_damage_is_detected_and_named(tmp_path, damage):
    p = str(tmp_path / "c.qtc")
    checkpoint.save(p, STATE, seq=1)
    data = bytearray(open(p, "rb").read())
    if damage == "truncate":
        data = data[:-7]
    elif damage == "flip":
        data[40] ^= 0x10
    elif damage == "magic":
        data[0:4] = b"XXXX"
    elif damage == "version":
        data[4] = 99
    else:
        data = bytearray()
    open(p, "wb").write(data)
    with pytest.raises(checkpoint.CheckpointError) as e:
        checkpoint.verify(p)
    assert p in str(e.value)


def test_write_cut_at_any_byte_keeps_last_good(tmp_path):
    """Simulate a reset at every stage of save(): the tmp file cut short at
    random lengths, with and without the renames done."""
    rng = random.Random(1)
    p = str(tmp_path / "c.qtc")
    checkpoint.save(p, dict(STATE, step=1), seq=1)
    checkpoint.save(p, dict(STATE, step=2), seq=2)  # now c.qtc=2, c.qtc.bak=1
    full = open(p, "rb").read()
    for _ in range(200):
        cut = rng.randrange(len(full))
        stage = rng.choice(["tmp-partial", "after-bak-rename"])
        d = tmp_path / ("r%d" % _)
        d.mkdir()
        q = str(d / "c.qtc")
        open(q + ".bak", "wb").write(open(p + ".bak", "rb").read())
        if stage == "tmp-partial":
            open(q, "wb").write(full)
            open(q + ".tmp", "wb").write(full[:cut])
            want = 2
        else:  # reset after path -> .bak, before .tmp -> path; .tmp partial
            open(q + ".bak", "wb").write(full)
            open(q + ".tmp", "wb").write(full[:cut])
            want = 2
        state, seq = checkpoint.load(q)
        assert seq == want and state["step"] == 2


def test_round_trip_micropython(run, target):
    if target != "unix":
        pytest.skip("needs a writable filesystem: Unix port")
    out = run("""
import array
from qtrain import checkpoint
st = {'w': bytearray(range(100)), 'f': array.array('f', [1.5, -2.0]), 'n': 7, 'x': 0.25, 's': 'ab'}
checkpoint.save('ck.qtc', st, seq=9)
checkpoint.save('ck.qtc', st, seq=10)
got, seq = checkpoint.load('ck.qtc', into={'w': bytearray(100)})
print(seq, bytes(got['w']) == bytes(range(100)), list(got['f']), got['n'], got['x'], got['s'])
d = open('ck.qtc', 'rb').read()
open('ck.qtc', 'wb').write(d[:-3])
got, seq = checkpoint.load('ck.qtc')
print('fallback', seq)
""")
    assert "10 True [1.5, -2.0] 7 0.25 ab" in out
    assert "fallback 9" in out
