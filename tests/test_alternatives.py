"""The pure-MicroPython and viper versions of the uint8 Dense step
(host_tools/qtrain_host/alternatives, compared by bench_alternatives) give
bit-identical results to qtrain.layers.Dense on _qtrain: outputs, errors,
weights, biases, quantization records, optimizer and generator states."""
import pytest

from qtrain_host import bench_alternatives


@pytest.mark.parametrize("n_in,n_out,lr,alpha_w", [(40, 12, 0.02, 0.001), (97, 5, 0.5, 0.5)])
def test_alternatives_bit_exact(run, target, n_in, n_out, lr, alpha_w):
    """The second case moves the weight range every step (the re-map path)."""
    if target != "unix":
        pytest.skip("the comparison runs on the Unix port (its viper code masks to 32 bits for the 64-bit port)")
    out = run("import compare\ncompare.check(%d, %d, steps=8, lr=%r, alpha_w=%r)\n" % (n_in, n_out, lr, alpha_w),
              files=bench_alternatives.files())
    same = [line.split()[1:] for line in out.splitlines() if line.startswith("@same ")]
    assert len(same) == 16, out
    assert all(s[2] == "-" for s in same), [s for s in same if s[2] != "-"]
    if alpha_w > 0.1:   # the weights' scale moved: they were re-mapped on the way
        scale = float(out.split("@wq")[1].split()[0])
        init = (6.0 / n_in) ** 0.5 * 2 / 255       # the initial He range [-a, a] / 255
        assert abs(scale / init - 1) > 0.05, out
