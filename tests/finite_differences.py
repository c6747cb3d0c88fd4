"""Central differences of a scalar function of a parameter, entry by entry: the reference that
gradients from autograd or from a learning rule are checked against."""
import torch


@torch.no_grad()
def central_differences(loss, parameter: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """``(loss() at p + ε e_i − loss() at p − ε e_i) / 2ε`` for every entry ``i`` of ``parameter``, which
    is moved in place and restored; ``loss`` reads it and returns a number or a 0-d tensor."""
    numeric = torch.zeros_like(parameter)
    flat = parameter.view(-1)
    for index in range(parameter.numel()):
        flat[index] += eps
        up = loss()
        flat[index] -= 2 * eps
        down = loss()
        flat[index] += eps
        numeric.view(-1)[index] = (up - down) / (2 * eps)
    return numeric
