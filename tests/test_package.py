"""The qtrain package at the REPL: import, show()."""


def test_show_ascii_art(run):
    out = run("""
import qtrain
img = bytearray(16)
img[5] = 255
img[10] = 100
qtrain.show(img, 4)
try:
    qtrain.show(img, 3)
except ValueError as e:
    print('ERR', e)
""", files=None)
    assert "  @@    " in out
    assert "    ++  " in out or "    --  " in out or "    ==  " in out
    assert "ERR show: image of 16 pixels is not a multiple of width=3" in out
