"""Every artifact's file name, in one place.

Scripts take `--run-dir` and ask `RunPaths` where things live; nothing else spells out a
file name.

A run holds one MLP and any number of SAEs of it. The default SAE lives in `sae/` with its labels
and pages in `reports/`; an SAE named NAME (`train_sae.py --name NAME`) lives in `sae/NAME/` with
its labels and pages in `reports/NAME/`, and its metrics.json sections are `sae:NAME`,
`interpretability:NAME`, `reports:NAME`. `RunPaths(root).for_sae(NAME)` answers every SAE-specific
question (`sae`, `features_csv`, `reports_dir`, `section("sae")`, ...) for that SAE, so a stage is
written once for all of them.
"""
import re
from dataclasses import dataclass, replace
from pathlib import Path

DEFAULT_RUN_DIR = Path("runs/default")
DEFAULT_SAE = "default"    # the name of the run's default SAE (sae/, reports/)
MAX_NAME = 64             # characters of an SAE's name
SAE_NAME = re.compile(rf"[A-Za-z_][A-Za-z0-9_]{{0,{MAX_NAME - 1}}}")
# names a named SAE cannot take: they are folders or files of sae/ and reports/ already
RESERVED_NAMES = {DEFAULT_SAE, "sweep", "saelens", "labels", "checkpoint", "sae_model", "static", "compare"}
# the stage that makes each input artifact (and what to call it), for "run ... first" messages
PRODUCERS = {
    "train_xlsx": ("", "dataset/data_generator.py"),
    "val_xlsx": ("", "dataset/data_generator.py"),
    "test_xlsx": ("", "dataset/data_generator.py"),
    "mlp": ("MLP ", "train_mlp.py"),
    "activations": ("activations ", "harvest_activations.py"),
    "sae": ("SAE ", "train_sae.py"),
    "features_csv": ("labels ", "label_features.py"),
    "neurons_csv": ("labels ", "label_features.py"),
    "labels_cache": ("labels ", "label_features.py"),
    "absorption_csv": ("labels ", "label_features.py"),
}


def check_sae_name(name: str) -> str:
    """`name` if it can name an SAE of a run, else ValueError saying what a name must be."""
    if name and SAE_NAME.fullmatch(name[:MAX_NAME]) and len(name) > MAX_NAME:
        shown = name if len(name) <= 80 else f"{name[:80]}..."
        raise ValueError(f"SAE name {shown!r}: {len(name)} characters, at most {MAX_NAME} (it names a folder and "
                         "metrics.json sections); shorten it")
    if not SAE_NAME.fullmatch(name or ""):
        shown = name if len(name or "") <= 80 else f"{name[:80]}... ({len(name)} characters)"
        raise ValueError(f"SAE name {shown!r}: expected a plain identifier (letters, digits, _; not starting with "
                         "a digit; at most 64 characters)")
    if name.lower() == DEFAULT_SAE and name != DEFAULT_SAE:   # sae/Default/ would never be listed or selected
        raise ValueError(f"SAE name {name!r}: differs only in case from the run's {DEFAULT_SAE!r} SAE; pick another")
    if name.lower() in RESERVED_NAMES - {DEFAULT_SAE}:
        raise ValueError(f"SAE name {name!r}: taken by a file or folder of the run; pick another")
    return name


@dataclass(frozen=True)
class RunPaths:
    root: Path
    sae_name: str = DEFAULT_SAE   # which SAE of the run the SAE-specific paths are about

    def __post_init__(self):
        object.__setattr__(self, "root", Path(self.root))

    def for_sae(self, name: str | None) -> "RunPaths":
        """The same run, with the SAE-specific paths of the SAE `name` (None: the default SAE)."""
        name = DEFAULT_SAE if name in (None, DEFAULT_SAE) else check_sae_name(name)
        return replace(self, sae_name=name)

    @property
    def is_default_sae(self) -> bool:
        return self.sae_name == DEFAULT_SAE

    def section(self, stage: str) -> str:
        """This SAE's section of metrics.json for a stage ("sae", "interpretability", "reports")."""
        return stage if self.is_default_sae else f"{stage}:{self.sae_name}"

    def sae_names(self) -> list[str]:
        """The SAEs of the run that have a model file: the default first, then named ones by name."""
        base = self.root / "sae"
        names = [DEFAULT_SAE] if (base / "sae_model.pth").exists() else []
        if base.is_dir():
            names += sorted(p.parent.name for p in base.glob("*/sae_model.pth")
                            if SAE_NAME.fullmatch(p.parent.name) and p.parent.name.lower() not in RESERVED_NAMES)
        return names

    def case_clash(self, name: str) -> str | None:
        """The SAE of the run whose name differs from `name` only in case (None if there is none): two
        such names are one folder on a case-insensitive file system, and one user's typo on any."""
        return next((have for have in self.sae_names() if have.lower() == name.lower() and have != name), None)

    # stage 1: data
    @property
    def dataset_dir(self) -> Path:
        return self.root / "dataset"

    @property
    def train_xlsx(self) -> Path:
        return self.dataset_dir / "mlp_train.xlsx"

    @property
    def val_xlsx(self) -> Path:
        return self.dataset_dir / "mlp_val.xlsx"

    @property
    def test_xlsx(self) -> Path:
        return self.dataset_dir / "mlp_test.xlsx"

    def split_xlsx(self, split: str) -> Path:
        return {"train": self.train_xlsx, "val": self.val_xlsx, "test": self.test_xlsx}[split]

    # stage 2: MLP
    @property
    def mlp_dir(self) -> Path:
        return self.root / "mlp"

    @property
    def mlp(self) -> Path:
        return self.mlp_dir / "perfect_mlp.pth"

    @property
    def mlp_checkpoint(self) -> Path:
        return self.mlp_dir / "checkpoint.pth"

    # stage 3: activations
    @property
    def activations(self) -> Path:
        return self.root / "mlp_activations.pt"

    # stage 4: SAE
    @property
    def sae_dir(self) -> Path:
        return self.root / "sae" if self.is_default_sae else self.root / "sae" / self.sae_name

    @property
    def sae(self) -> Path:
        return self.sae_dir / "sae_model.pth"

    @property
    def sae_checkpoint(self) -> Path:
        return self.sae_dir / "checkpoint.pth"

    @property
    def sae_saelens_dir(self) -> Path:
        """The same SAE in SAELens's layout (cfg.json + safetensors), for the field's tools."""
        return self.sae_dir / "saelens"

    @property
    def sweep_dir(self) -> Path:
        return self.root / "sae" / "sweep"

    @property
    def sweep_csv(self) -> Path:
        return self.sweep_dir / "sweep.csv"

    @property
    def sweep_html(self) -> Path:
        return self.sweep_dir / "frontier.html"

    # stages 5-6: probe and reports
    @property
    def reports_dir(self) -> Path:
        return self.root / "reports" if self.is_default_sae else self.root / "reports" / self.sae_name

    @property
    def compare_html(self) -> Path:
        """feature_reports.py: every SAE of the run beside the neurons and random directions."""
        return self.root / "reports" / "compare.html"

    @property
    def index_html(self) -> Path:
        return self.reports_dir / "index.html"

    @property
    def heatmap_html(self) -> Path:
        return self.reports_dir / "logic_circuit_map.html"

    @property
    def distributions_html(self) -> Path:
        return self.reports_dir / "circuit_bell_curves.html"

    @property
    def sankey_html(self) -> Path:
        return self.reports_dir / "uhd_bold_sankey.html"

    @property
    def probe_html(self) -> Path:
        """feature_reports.py: the MLP and the SAE run in the browser on a typed input (viz/probe_page.py)."""
        return self.reports_dir / "probe.html"

    @property
    def training_html(self) -> Path:
        """feature_reports.py: the training curves of the MLP and the SAE, from their files."""
        return self.reports_dir / "training.html"

    @property
    def trace_xlsx(self) -> Path:
        return self.reports_dir / "circuit_trace_detailed.xlsx"

    @property
    def features_csv(self) -> Path:
        return self.reports_dir / "features.csv"

    @property
    def neurons_csv(self) -> Path:
        return self.reports_dir / "neurons.csv"

    @property
    def absorption_csv(self) -> Path:
        """label_features.py: absorption of every hierarchy's parent, per unit set (analysis.absorption)."""
        return self.reports_dir / "absorption.csv"

    @property
    def splitting_csv(self) -> Path:
        """feature_splitting.py: one row per SAE of a dictionary-size sweep (monosemanticity, FVU, ...)."""
        return self.reports_dir / "splitting.csv"

    @property
    def splitting_links_csv(self) -> Path:
        """feature_splitting.py: each feature's parent in the next smaller dictionary, and each Matryoshka
        latent's in the smaller prefixes."""
        return self.reports_dir / "splitting_links.csv"

    @property
    def splitting_html(self) -> Path:
        """feature_splitting.py: the splitting links as a page."""
        return self.reports_dir / "splitting.html"

    @property
    def labels_cache(self) -> Path:
        """label_features.py: the fresh inputs and unit-by-concept F1 matrices behind features.csv."""
        return self.reports_dir / "labels.pt"

    @property
    def plotly_js(self) -> Path:
        """feature_reports.py: the one copy of plotly.js the report pages load by relative path (offline)."""
        return self.reports_dir / "plotly.min.js"

    # every stage
    @property
    def metrics(self) -> Path:
        return self.root / "metrics.json"
