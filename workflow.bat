@echo off
rem The whole pipeline, or the tests, on Windows: what workflow.sh does. The first run creates .venv and
rem installs requirements.txt and the project (editable) into it (again whenever either changes); the
rem pipeline itself (its stages, their order, --from, the summary) is run_pipeline.py, which gets the arguments.
rem   workflow.bat                          run every stage into runs\default
rem   workflow.bat --run-dir runs\x --seed 1   another run folder / seed
rem   workflow.bat --from sae               resume the chain at a stage: data mlp harvest sae paper labels probe reports
rem   workflow.bat test [PYTEST ARGS]       set up the same way, then run the test suite (up to 8 pytest args)
rem   workflow.bat --help                   the flags (run_pipeline.py --help)
rem Written in what Windows' cmd and wine's run alike (tests\test_workflow_bat.py runs it under wine):
rem one-line ifs, "if errorlevel 1" after a command (wine runs b in "a || b" even when a succeeds), goto, no blocks.
setlocal EnableExtensions
cd /d "%~dp0"

set "PY=.venv\Scripts\python.exe"
set "BASE=python"
rem 1 (this set-up) + the stages of common\pipeline.py (tests\stages\test_pipeline.py checks it)
set "TOTAL=9"
if /i "%~1"=="test" goto setup
for %%a in (%*) do if /i "%%~a"=="--help" goto help
for %%a in (%*) do if /i "%%~a"=="-h" goto help
rem the flags, checked by the system Python (run_pipeline.py --check needs no package) before the slow set-up
%BASE% run_pipeline.py --check %*
if errorlevel 1 exit /b %errorlevel%

:setup
echo [1/%TOTAL%] Setting up environment...
set "WANT="
for /f "delims=" %%h in ('%BASE% run_pipeline.py --setup-hash') do set "WANT=%%h"
if not defined WANT goto setupfail
set "HAVE="
if exist ".venv\requirements.sha" set /p HAVE=<".venv\requirements.sha"
if exist "%PY%" if "%HAVE%"=="%WANT%" goto uptodate
%BASE% -m venv .venv
if errorlevel 1 goto setupfail
"%PY%" -m pip install --quiet --upgrade pip >nul 2>&1
"%PY%" -m pip install --quiet -r requirements.txt
if errorlevel 1 goto setupfail
rem the project's own packages, editable: importable from anywhere (notebooks, stage 1 as a plain script)
"%PY%" -m pip install --quiet --no-deps -e .
if errorlevel 1 goto setupfail
>".venv\requirements.sha" echo %WANT%
echo       installed requirements.txt into .venv
goto ready
:uptodate
echo       .venv is up to date
goto ready
:setupfail
>&2 echo FAILED at stage: Setting up environment
exit /b 1

:ready
if /i "%~1"=="test" goto tests
"%PY%" run_pipeline.py %*
exit /b %errorlevel%

:tests
echo Running tests...
"%PY%" -m pytest %2 %3 %4 %5 %6 %7 %8 %9
exit /b %errorlevel%

:help
%BASE% run_pipeline.py --help
exit /b %errorlevel%
