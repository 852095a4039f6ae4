"""A run's two models, loaded together: the one loader every stage after the SAE uses."""
from common import provenance
from common.io import PipelineError, require_inputs
from common.paths import RunPaths
from mlp.mlp_definition import load_mlp
from sae.sae_definition import load_sae


def load_run_models(paths: RunPaths, device="cpu"):
    """(mlp, sae) of a run, in eval mode; a missing model names the stage to run, and an SAE trained
    on another MLP's hidden layer (its provenance names another MLP) is refused."""
    require_inputs(paths, "mlp", "sae")
    mlp = load_mlp(paths.mlp, device=device)
    sae = load_sae(paths.sae, device=device)
    if sae.cfg.d_in != mlp.cfg.d_hidden:
        raise PipelineError(f"{paths.sae}: SAE reads {sae.cfg.d_in}-d activations but the MLP's hidden layer "
                            f"is {mlp.cfg.d_hidden}-d; re-run train_sae.py --run-dir {paths.root}")
    which = "" if paths.is_default_sae else f" --name {paths.sae_name}"
    provenance.require_made_from(paths.sae, sae.provenance, "mlp", paths.mlp, mlp.provenance["digest"],
                                 f"run harvest_activations.py and train_sae.py --run-dir {paths.root}{which} first")
    return mlp, sae
