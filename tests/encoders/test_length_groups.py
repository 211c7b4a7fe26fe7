"""Encoding a large mixed-length batch in length groups changes nothing but speed."""

from __future__ import annotations

import pytest
import torch

from textmtl.encoders.layers import BiRNNLayer


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_length_groups_give_the_same_outputs_and_gradients(cell):
    torch.manual_seed(0)
    layer = BiRNNLayer(6, 5, cell=cell)
    lengths = torch.randint(1, 40, (100,))
    lengths[7] = 60  # one long row: the whole batch pads to 60 steps
    x = torch.randn(100, 60, 6, requires_grad=True)

    outputs, grads = [], []
    for group_rows in (None, 16):
        layer.group_rows = group_rows
        out = layer(x, lengths)
        (out * torch.linspace(-1, 1, out.shape[-1])).sum().backward()
        outputs.append(out.detach())
        grads.append((x.grad.clone(), [p.grad.clone() for p in layer.parameters()]))
        x.grad = None
        layer.zero_grad(set_to_none=True)
    torch.testing.assert_close(outputs[0], outputs[1], rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(grads[0][0], grads[1][0], rtol=1e-4, atol=1e-6)
    for a, b in zip(grads[0][1], grads[1][1]):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


def test_grouping_is_skipped_when_rows_are_alike():
    layer = BiRNNLayer(3, 2)
    layer.group_rows = 4
    calls = []
    original = layer._encode
    layer._encode = lambda x, lengths: calls.append(x.shape) or original(x, lengths)
    layer(torch.randn(10, 8, 3), torch.full((10,), 8))
    assert calls == [torch.Size([10, 8, 3])]
