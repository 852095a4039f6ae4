"""workflow.bat under wine, with a stand-in python.exe (issue 22, part 6).

Debian's wine (8.0) runs the batch file with its `cmd`; a stand-in `python.exe`, built here from a
few lines of C by mingw's gcc (once per session), takes Python's place: it records each call's
program and arguments, acts out what workflow.bat asks of Python (`-m venv DIR` makes
DIR\\Scripts\\python.exe, a copy of itself; `--setup-hash` prints a hash of requirements.txt and
pyproject.toml) and exits with the code a test chooses for the calls whose command line holds a
given text. So the file's own logic is checked: the flags handed over untouched and checked before
the set-up, `test` mode, exit codes reaching the caller, and the set-up branch (.venv made on first
use, the hash recorded, a re-install when either file changes and none otherwise).

Needs `wine` and `x86_64-w64-mingw32-gcc` (`apt-get install -y wine wine64 gcc-mingw-w64-x86-64`;
`./workflow.sh test` installs them): skipped with the reason otherwise, and a failure under CI=true.
What this cannot vouch for (no Windows CPython runs here) is said in the README.
"""
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.stages.test_pipeline import BAD_FLAGS

WINE, GCC = shutil.which("wine"), shutil.which("x86_64-w64-mingw32-gcc")

STANDIN_C = r"""
#include <windows.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static unsigned long long fnv(const char *path, unsigned long long h) {   /* FNV-1a over a file's bytes */
    FILE *f = fopen(path, "rb");
    int c;
    if (!f) return h;
    while ((c = fgetc(f)) != EOF) h = (h ^ (unsigned char)c) * 1099511628211ULL;
    fclose(f);
    return h;
}

int main(int argc, char **argv) {
    char self[MAX_PATH], dir[MAX_PATH], dst[MAX_PATH];
    const char *log = getenv("STANDIN_LOG"), *match = getenv("STANDIN_FAIL_MATCH"), *code = getenv("STANDIN_FAIL_CODE");
    int i;
    GetModuleFileNameA(NULL, self, MAX_PATH);
    if (log) {                       /* one line per call: the program, then each argument, tab-separated */
        FILE *f = fopen(log, "ab");
        if (f) {
            fputs(self, f);
            for (i = 1; i < argc; i++) fprintf(f, "\t%s", argv[i]);
            fputs("\n", f);
            fclose(f);
        }
    }
    if (argc >= 4 && !strcmp(argv[1], "-m") && !strcmp(argv[2], "venv")) {
        snprintf(dir, sizeof dir, "%s\\Scripts", argv[3]);
        CreateDirectoryA(argv[3], NULL);
        CreateDirectoryA(dir, NULL);
        snprintf(dst, sizeof dst, "%s\\python.exe", dir);
        if (!CopyFileA(self, dst, FALSE)) return 1;
    }
    for (i = 1; i < argc; i++)
        if (!strcmp(argv[i], "--setup-hash"))
            printf("%016llx\n", fnv("pyproject.toml", fnv("requirements.txt", 14695981039346656037ULL)));
    if (match && code && strstr(GetCommandLineA(), match)) return atoi(code);
    return 0;
}
"""


def fnv_hash(folder: Path) -> str:
    """What the stand-in prints for --setup-hash (the real run_pipeline.py prints a SHA-256)."""
    h = 14695981039346656037
    for name in ("requirements.txt", "pyproject.toml"):
        for byte in (folder / name).read_bytes():
            h = ((h ^ byte) * 1099511628211) % 2**64
    return f"{h:016x}"


def windows_path(p: Path) -> str:
    return "Z:" + str(p).replace("/", "\\")   # wine maps the Unix root to drive Z:


@pytest.fixture(scope="session")
def wine(tmp_path_factory):
    """The stand-in built, a wine prefix of this session started (its first start takes seconds) and
    kept running (`wineserver -p`) so that every test's call starts fast; the environment to run under."""
    missing = [name for name, path in (("wine", WINE), ("x86_64-w64-mingw32-gcc", GCC)) if path is None]
    if missing:
        what = f"{' and '.join(missing)} not found: install them with `apt-get install -y wine wine64 gcc-mingw-w64-x86-64`"
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(f"{what} (under CI: ./workflow.sh test should have installed them)")
        pytest.skip(f"{what} to test workflow.bat")
    home = tmp_path_factory.mktemp("wine")
    (home / "bin").mkdir()
    (home / "standin.c").write_text(STANDIN_C)
    subprocess.run([GCC, "-O1", "-o", str(home / "bin" / "python.exe"), str(home / "standin.c")], check=True, timeout=120)
    env = {**os.environ, "WINEPREFIX": str(home / "prefix"), "WINEDEBUG": "-all", "WINEDLLOVERRIDES": "mscoree,mshtml=",
           "WINEPATH": windows_path(home / "bin"), "STANDIN_LOG": windows_path(home / "calls.log")}
    for var in ("STANDIN_FAIL_MATCH", "STANDIN_FAIL_CODE"):
        env.pop(var, None)
    (home / "prefix").mkdir()
    subprocess.run(["wineserver", "-p"], env=env, check=True, timeout=60)
    subprocess.run([WINE, "cmd", "/c", "exit 0"], env=env, check=True, timeout=300,  # makes the prefix (~15 s)
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        yield home, env
    finally:
        subprocess.run(["wineserver", "-k"], env=env, timeout=60)


@pytest.fixture
def project(tmp_path) -> Path:
    """What workflow.bat reads: itself and the two set-up files (the stand-in runs no Python file)."""
    for name in ("workflow.bat", "requirements.txt", "pyproject.toml"):
        shutil.copy2(ROOT / name, tmp_path / name)
    return tmp_path


def bat(wine, project: Path, *args, fail_match: str | None = None, fail_code: int = 1):
    """Run `wine cmd /c workflow.bat ARGS` in `project`; (exit code, stdout, stderr, the stand-in's calls
    as [program, arg, ...] with the program named 'python' or 'venv')."""
    home, env = wine
    log = home / "calls.log"
    log.unlink(missing_ok=True)
    if fail_match:
        env = {**env, "STANDIN_FAIL_MATCH": fail_match, "STANDIN_FAIL_CODE": str(fail_code)}
    # into files, not pipes: wine's background processes (kept by the persistent wineserver) inherit the
    # handles, so a pipe would never reach its end
    with open(home / "stdout", "w+b") as stdout, open(home / "stderr", "w+b") as stderr:
        code = subprocess.run([WINE, "cmd", "/c", "workflow.bat", *args], cwd=project, env=env, stdout=stdout,
                              stderr=stderr, timeout=120).returncode
    out, err = ((home / name).read_bytes().decode().replace("\r\n", "\n") for name in ("stdout", "stderr"))
    calls = []
    for line in log.read_text().splitlines() if log.exists() else []:
        program, *rest = line.split("\t")
        venv = program.lower().endswith(r"\.venv\scripts\python.exe")
        assert venv or program.lower() == windows_path(home / "bin" / "python.exe").lower(), program
        calls.append(["venv" if venv else "python", *rest])
    return code, out, err, calls


SET_UP = [["python", "run_pipeline.py", "--setup-hash"], ["python", "-m", "venv", ".venv"],
          ["venv", "-m", "pip", "install", "--quiet", "--upgrade", "pip"],
          ["venv", "-m", "pip", "install", "--quiet", "-r", "requirements.txt"],
          ["venv", "-m", "pip", "install", "--quiet", "--no-deps", "-e", "."]]
UP_TO_DATE = [["python", "run_pipeline.py", "--setup-hash"]]


def test_first_run_sets_up_then_hands_its_flags_to_the_runner_and_the_next_run_reinstalls_nothing(wine, project):
    flags = ["--seed", "1", "--run-dir", r"runs\my run", "--from", "labels"]
    code, out, err, calls = bat(wine, project, *flags)
    assert code == 0, err
    assert calls == [["python", "run_pipeline.py", "--check", *flags], *SET_UP, ["venv", "run_pipeline.py", *flags]]
    assert out == "[1/9] Setting up environment...\n      installed requirements.txt into .venv\n"
    assert (project / ".venv" / "Scripts" / "python.exe").is_file()
    assert (project / ".venv" / "requirements.sha").read_text().strip() == fnv_hash(project)

    code, out, err, calls = bat(wine, project, *flags)
    assert code == 0, err
    assert calls == [["python", "run_pipeline.py", "--check", *flags], *UP_TO_DATE, ["venv", "run_pipeline.py", *flags]]
    assert out == "[1/9] Setting up environment...\n      .venv is up to date\n"


@pytest.mark.parametrize("changed", ["requirements.txt", "pyproject.toml"])
def test_a_changed_set_up_file_reinstalls(wine, project, changed):
    assert bat(wine, project)[0] == 0
    with open(project / changed, "a") as f:
        f.write("\n# changed\n")
    code, out, err, calls = bat(wine, project)
    assert code == 0 and calls[1:-1] == SET_UP and "installed requirements.txt into .venv" in out, (err, calls)
    assert (project / ".venv" / "requirements.sha").read_text().strip() == fnv_hash(project)


def test_a_failed_install_stops_and_is_tried_again_next_time(wine, project):
    code, out, err, calls = bat(wine, project, fail_match="-r requirements.txt")
    assert code == 1 and err == "FAILED at stage: Setting up environment\n", (code, err)
    assert calls[-1][:5] == ["venv", "-m", "pip", "install", "--quiet"] and "run_pipeline.py" not in calls[-1]
    assert not (project / ".venv" / "requirements.sha").exists()
    code, out, err, calls = bat(wine, project)
    assert code == 0 and calls[1:-1] == SET_UP, (err, calls)


@pytest.mark.parametrize("flags", [f for f, _ in BAD_FLAGS], ids=[" ".join(f) or "empty" for f, _ in BAD_FLAGS])
def test_bad_flags_are_refused_before_the_set_up(wine, project, flags):
    """The runner's check (run_pipeline.py --check, tested with real Python in test_pipeline.py) gets
    the flags as given and its exit code 2 ends the batch file before .venv is touched."""
    code, out, err, calls = bat(wine, project, *flags, fail_match="--check", fail_code=2)
    assert code == 2 and out == "", (code, out, err)
    assert calls == [["python", "run_pipeline.py", "--check", *flags]]
    assert not (project / ".venv").exists()


@pytest.mark.parametrize("fail_code", [1, 130])
def test_a_failing_stage_s_exit_code_reaches_the_caller(wine, project, fail_code):
    """The runner prints the FAILED line; the batch file must return its code (1, or 130 for Ctrl-C)."""
    code, out, err, calls = bat(wine, project, "--from", "sae", fail_match="run_pipeline.py --from", fail_code=fail_code)
    assert code == fail_code, (code, err)
    assert calls[-1] == ["venv", "run_pipeline.py", "--from", "sae"]


def test_test_mode_sets_up_then_runs_pytest_with_its_arguments(wine, project):
    code, out, err, calls = bat(wine, project, "test", "-k", "mlp and not slow", "-x", fail_match="pytest", fail_code=5)
    assert code == 5, (code, err)
    assert calls == [*SET_UP, ["venv", "-m", "pytest", "-k", "mlp and not slow", "-x"]]
    assert out.endswith("Running tests...\n")


def test_help_prints_the_runners_help_without_setting_up(wine, project):
    code, out, err, calls = bat(wine, project, "--help")
    assert code == 0 and calls == [["python", "run_pipeline.py", "--help"]]
    assert not (project / ".venv").exists()
