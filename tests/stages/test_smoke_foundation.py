def test_tiny_run_builds(tiny_run):
    assert tiny_run.mlp.exists() and tiny_run.activations.exists()
