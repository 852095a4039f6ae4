"""The pipeline, defined once: its stages, their order and the flags of each in the default run.

`run_pipeline.py` runs them (workflow.sh and workflow.bat set up `.venv`, then hand it their
arguments). Every stage stays a standalone script: `stage_argv` is the command line that reproduces
its part of a run, e.g. for the paper's SAE

    python train_sae.py --run-dir runs/default --seed 0 --name paper --architecture relu --d-sae 2048

Standard library only: `run_pipeline.py --check` reads this with the system Python, before `.venv`.
"""
import hashlib
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Stage:
    key: str                      # its name for --from
    title: str                    # the progress line: "[n/9] Training MLP..."
    script: str                   # the stage script, from the project root
    flags: tuple[str, ...] = ()   # its flags in the default run, beside --run-dir and --seed

    @property
    def module(self) -> str:
        return script_module(self.script)


STAGES = (
    Stage("data", "Generating dataset", "dataset/data_generator.py"),
    Stage("mlp", "Training MLP", "train_mlp.py"),
    # the SAE learns from fresh inputs of the task, not only the 8000 training rows (README): 300k to
    # train on + 10k held out, none of them training rows
    Stage("harvest", "Harvesting activations", "harvest_activations.py", ("--n-samples", "310000")),
    Stage("sae", "Training sparse autoencoder", "train_sae.py"),
    # the design card's SAE beside the default one: the paper's L1/ReLU architecture, 2048 features, its sparse recipe
    Stage("paper", "Training the paper's SAE (relu, 2048 features)", "train_sae.py",
          ("--name", "paper", "--architecture", "relu", "--d-sae", "2048")),
    Stage("labels", "Labelling features of every SAE", "label_features.py", ("--sae", "all")),
    Stage("probe", "Probing features", "feature_probe.py"),
    Stage("reports", "Generating reports", "feature_reports.py"),
)
STAGE_KEYS = tuple(s.key for s in STAGES)
SUMMARY_SCRIPT = "run_summary.py"   # what the run ends with
# The progress lines count the set-up of .venv as step 1 (workflow.sh and workflow.bat print it,
# as "[1/9]": tests/stages/test_pipeline.py checks that they agree with this), then one per stage.
SETUP_STEPS = 1
TOTAL_STEPS = SETUP_STEPS + len(STAGES)


def script_module(script: str) -> str:
    """A script as an importable module: dataset/data_generator.py -> dataset.data_generator."""
    return script.removesuffix(".py").replace("/", ".")


def stage_argv(stage: Stage, run_dir: str, seed: int, slots: int | None = None) -> list[str]:
    """The stage's flags in a run into `run_dir` with `seed` (what its script's parse_args takes);
    `slots` (the task's L) goes to the data stage alone: the later ones read it from the run."""
    extra = ["--slots", str(slots)] if slots is not None and stage.key == "data" else []
    return ["--run-dir", str(run_dir), "--seed", str(seed), *extra, *stage.flags]


# .venv is (re)installed when these change: workflow.sh records their cksum, workflow.bat this hash
SETUP_FILES = ("requirements.txt", "pyproject.toml")


def setup_hash(root: Path) -> str:
    """SHA-256 of the set-up files' bytes, one after the other (workflow.bat: `run_pipeline.py --setup-hash`,
    since Windows' cmd has no hash of its own that wine's runs too)."""
    h = hashlib.sha256()
    for name in SETUP_FILES:
        h.update((Path(root) / name).read_bytes())
    return h.hexdigest()
