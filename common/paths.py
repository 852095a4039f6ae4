"""Every artifact's file name, in one place.

Scripts take `--run-dir` and ask `RunPaths` where things live; nothing else spells out a
file name.
"""
from dataclasses import dataclass
from pathlib import Path

DEFAULT_RUN_DIR = Path("runs/default")
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
}


@dataclass(frozen=True)
class RunPaths:
    root: Path

    def __post_init__(self):
        object.__setattr__(self, "root", Path(self.root))

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
        return self.root / "sae"

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
        return self.sae_dir / "sweep"

    def sweep_sae(self, name: str, value: str) -> Path:
        """The SAE a `train_sae.py --sweep NAME=...` run trains for one value."""
        return self.sweep_dir / f"{name}={value}" / "sae_model.pth"

    @property
    def sweep_csv(self) -> Path:
        return self.sweep_dir / "sweep.csv"

    @property
    def sweep_html(self) -> Path:
        return self.sweep_dir / "frontier.html"

    # stages 5-6: probe and reports
    @property
    def reports_dir(self) -> Path:
        return self.root / "reports"

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
    def trace_xlsx(self) -> Path:
        return self.reports_dir / "circuit_trace_detailed.xlsx"

    @property
    def features_csv(self) -> Path:
        return self.reports_dir / "features.csv"

    @property
    def neurons_csv(self) -> Path:
        return self.reports_dir / "neurons.csv"

    @property
    def splitting_csv(self) -> Path:
        """feature_splitting.py: one row per SAE of a dictionary-size sweep (monosemanticity, FVU, ...)."""
        return self.reports_dir / "splitting.csv"

    @property
    def splitting_links_csv(self) -> Path:
        """feature_splitting.py: each feature's parent in the next smaller dictionary."""
        return self.reports_dir / "splitting_links.csv"

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
