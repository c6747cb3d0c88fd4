"""Equilibrium propagation against the exact gradient of a network whose fixed point is known in closed
form (linear activation: a linear system, differentiated by autograd through ``torch.linalg.solve``):
the relaxation reaches that fixed point, the one-sided estimate's error halves with β and the
symmetric one's quarters (Scellier & Bengio 2017; Laborieux et al. 2021); and the method trains."""
import pytest
import torch
from finite_differences import central_differences

from neuroplastic.cli.main import main
from neuroplastic.experiments.eqprop_beta import exact_gradient, linear_problem, relative_error
from neuroplastic.experiments.eqprop_beta import run as reproduce_eqprop_beta
from neuroplastic.networks import EnergyNetwork, NotSettled
from neuroplastic.experiments import get_experiment
from neuroplastic.experiments.eqprop_gdu import bptt_step_gradients
from neuroplastic.training.eqprop import eqprop_gradients, step_updates


def test_the_relaxation_reaches_the_closed_form_fixed_point():
    net, x, y = linear_problem()
    free = net.relax(x)
    for a, b in zip(free, net.fixed_point(x)):
        torch.testing.assert_close(a, b.detach(), rtol=0, atol=1e-12)
    nudged = net.relax(x, target=y, beta=0.3, state=free)
    for a, b in zip(nudged, net.fixed_point(x, target=y, beta=0.3)):
        torch.testing.assert_close(a, b.detach(), rtol=0, atol=1e-12)


@pytest.mark.parametrize("symmetric, ratio", [(False, 2.0), (True, 4.0)])
def test_halving_beta_halves_the_one_sided_error_and_quarters_the_symmetric_one(symmetric, ratio):
    net, x, y = linear_problem()
    exact = exact_gradient(net, x, y)
    errors = [relative_error(eqprop_gradients(net, x, y, beta=beta, symmetric=symmetric)[0], exact)
              for beta in (0.05, 0.025, 0.0125, 0.00625)]
    assert errors[-1] < (1e-4 if symmetric else 1e-2)  # measured: 7.3e-5 and 8.4e-3
    for coarse, fine in zip(errors[:-1], errors[1:]):
        assert coarse / fine == pytest.approx(ratio, rel=0.1)


def test_backpropagation_through_the_relaxation_is_the_exact_gradient():
    """The reference EqProp approaches: autograd through every step of the settled free relaxation
    equals the gradient through the closed-form fixed point."""
    net, x, y = linear_problem()
    cost = 0.5 * ((net.relax(x, differentiable=True)[-1] - y) ** 2).sum() / x.shape[0]
    through_steps = torch.autograd.grad(cost, tuple(net.parameters()))
    assert relative_error(through_steps, exact_gradient(net, x, y)) < 1e-10


def test_the_update_is_local_the_phases_difference_of_pre_and_post_activity():
    """For W_l the estimate is (ρ(s_l^β) ρ(s_{l−1}^β)ᵀ − ρ(s_l⁰) ρ(s_{l−1}⁰)ᵀ) / (β B), with the sign of a
    gradient (descent lowers the cost): −Δ of the Hebbian products."""
    net = EnergyNetwork((5, 6, 3), free_steps=200, nudged_steps=200, tolerance=1e-10,
                        generator=torch.Generator().manual_seed(1)).double()
    x = torch.rand(4, 5, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    y = torch.nn.functional.one_hot(torch.tensor([0, 2, 1, 0]), 3).double()
    grads, free = eqprop_gradients(net, x, y, beta=0.5)
    nudged = net.relax(x, target=y, beta=0.5, state=free)
    rho = net.rho
    for layer, grad in enumerate(grads[:2]):  # the weights come first
        below_free, below_nudged = (x, x) if layer == 0 else (free[layer - 1], nudged[layer - 1])
        hebb = (rho(nudged[layer]).t() @ rho(below_nudged) - rho(free[layer]).t() @ rho(below_free)) / (0.5 * 4)
        torch.testing.assert_close(grad, -hebb, rtol=1e-10, atol=1e-12)


def test_reproduce_eqprop_beta_quick_passes_and_draws(tmp_path):
    outcome = reproduce_eqprop_beta(quick=True)
    assert outcome.passed and len(outcome.measured["symmetric_ratio"]) == 3
    outcome.draw(tmp_path / "beta.png")
    assert (tmp_path / "beta.png").exists()


def test_the_hard_sigmoid_estimate_against_finite_differences_of_the_settled_cost():
    """No closed form: the cost at the relaxed free state, differentiated by central differences in
    every parameter (relaxations settled to 1e-13)."""
    net = EnergyNetwork((3, 4, 2), free_steps=600, nudged_steps=600, tolerance=1e-13, scale=0.5,
                        generator=torch.Generator().manual_seed(3)).double()
    with torch.no_grad():
        for bias in net.biases:
            bias.fill_(0.1)
    x = torch.rand(5, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(4))
    y = torch.rand(5, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(5))

    def cost():
        return float(0.5 * ((net.relax(x)[-1] - y) ** 2).sum() / 5)
    numeric = [central_differences(cost, param) for param in net.parameters()]
    with torch.no_grad():
        estimate, free = eqprop_gradients(net, x, y, beta=1e-3, symmetric=True)  # under no_grad: works
    assert all(bool(((s > 0) & (s < 1)).any()) for s in free)  # states inside the box, where ρ' = 1
    assert all(float(g.abs().max()) > 0 for g in numeric[:2])
    assert relative_error(estimate, numeric) < 1e-5


def test_bad_inputs_are_refused_with_one_error():
    net, x, y = linear_problem()
    for bad in (x[0], x[:, :3], x.long()):
        with pytest.raises(ValueError, match="clamped input must be a float tensor"):
            net.relax(bad)
    with pytest.raises(ValueError, match="needs a target of shape"):
        net.relax(x, beta=0.1)
    with pytest.raises(ValueError, match="needs a target of shape"):
        net.relax(x, target=y[:, :1], beta=0.1)
    with pytest.raises(ValueError, match="steps"):
        net.relax(x, steps=0)
    with pytest.raises(ValueError, match=r"network input must be \(T, B, n_inputs\)"):
        net(x)


def test_a_relaxation_that_does_not_settle_is_refused():
    net, x, y = linear_problem()
    with pytest.raises(NotSettled, match="free relaxation did not settle in 3 steps"):
        net.relax(x, steps=3)
    with pytest.raises(ValueError, match="eqprop beta"):
        eqprop_gradients(net, x, y, beta=0.0)
    with pytest.raises(ValueError, match="closed form for the linear activation only"):
        EnergyNetwork((3, 2)).fixed_point(torch.zeros(1, 3))


def test_eqprop_trains_digits_from_the_command_line(tmp_path, capsys):
    import json

    assert main(["train", "--task", "digits", "--rule", "eqprop", "--epochs", "3", "--out", str(tmp_path / "run"),
                 "--json"]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["test_accuracy"] > 0.85 and summary["synops"] > 0
    for option in ("beta=0", "beta=nan", "symmetric=maybe"):
        assert main(["train", "--task", "digits", "--rule", "eqprop", "--rule-option", option, "--epochs", "1",
                     "--out", str(tmp_path / "bad")]) == 2
        assert len(capsys.readouterr().err.strip().splitlines()) == 1
        assert not (tmp_path / "bad").exists()


def test_the_per_step_updates_sum_to_the_one_sided_estimate():
    net = EnergyNetwork((5, 6, 3), nudged_steps=12, tolerance=10.0, generator=torch.Generator().manual_seed(3)).double()
    x = torch.rand(4, 5, dtype=torch.float64, generator=torch.Generator().manual_seed(4))
    y = torch.nn.functional.one_hot(torch.tensor([0, 2, 1, 0]), 3).double()
    free = net.relax(x)
    total = eqprop_gradients(net, x, y, beta=0.2, free=free)[0]
    steps = step_updates(net, x, y, beta=0.2, free=free, steps=12)
    for whole, *parts in zip(total, *steps):
        torch.testing.assert_close(sum(parts), whole, rtol=1e-10, atol=1e-12)


def test_per_step_updates_match_bptt_through_the_free_phase_to_order_beta():
    """Ernoult et al. 2019's theorem on the linear network (converged free phase): the t-th update of
    the nudged phase is BPTT's gradient for the t+1-th last free step, with an error O(β)."""
    net, x, y = linear_problem()
    free = net.relax(x)
    bptt = bptt_step_gradients(net, x, y, free_steps=net.free_steps, steps=8)
    errors = []
    for beta in (0.004, 0.002, 0.001):
        ep = step_updates(net, x, y, beta=beta, free=free, steps=8)
        errors.append(relative_error([g for step in ep for g in step], [g for step in bptt for g in step]))
    assert errors[-1] < 1e-3
    assert errors[0] / errors[1] == pytest.approx(2.0, rel=0.1) and errors[1] / errors[2] == pytest.approx(2.0, rel=0.1)


def test_reproduce_eqprop_gdu_matches_bptt_at_the_papers_settings():
    outcome = get_experiment("eqprop-gdu")(quick=True, progress=False)
    assert outcome.passed
    for layer in (1, 2):
        assert outcome.measured[f"layer_{layer}_at_beta_0.01"]["cosine"] > 0.999  # measured: 0.9996, 0.99995
