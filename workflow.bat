@echo off
rem The whole pipeline, or the tests, on Windows; equivalent to workflow.sh.
rem   workflow.bat                          run every stage into runs\default
rem   workflow.bat --run-dir runs\x --seed 1   another run folder / seed
rem   workflow.bat --from sae               resume at a stage: data mlp harvest sae labels probe reports
rem   workflow.bat test [PYTEST ARGS]       set up the same way, then run the test suite
setlocal EnableExtensions EnableDelayedExpansion
cd /d "%~dp0"

set "PY=.venv\Scripts\python.exe"
set "RUN_DIR=runs/default"
set "SEED=0"
set "FROM=data"
set "MODE=pipeline"
set "TOTAL=9"
set "EXTRA="
set "STAGES=data mlp harvest sae paper labels probe reports"

if /i "%~1"=="test" (
  set "MODE=test"
  shift
  goto setup
)

:parse
if "%~1"=="" goto checkfrom
for %%f in (--run-dir --seed --from) do if /i "%~1"=="%%f" if "%~2"=="" (
  echo error: workflow.bat: %~1 needs a value 1>&2
  exit /b 2
)
if /i "%~1"=="--run-dir" ( set "RUN_DIR=%~2" & shift & shift & goto parse )
if /i "%~1"=="--seed" ( set "SEED=%~2" & shift & shift & goto parse )
if /i "%~1"=="--from" ( set "FROM=%~2" & shift & shift & goto parse )
if /i "%~1"=="--help" ( findstr /b "rem" "%~f0" & exit /b 0 )
echo error: workflow.bat: unknown argument '%~1' 1>&2
exit /b 2

:checkfrom
set "FROM_INDEX="
set /a i=0
for %%s in (%STAGES%) do (
  if /i "%%s"=="%FROM%" set "FROM_INDEX=!i!"
  set /a i+=1
)
if not defined FROM_INDEX (
  echo error: workflow.bat: --from '%FROM%': expected one of: %STAGES% 1>&2
  exit /b 2
)

:setup
for /f %%t in ('powershell -NoProfile -Command "[int][double]::Parse((Get-Date -UFormat %%s))"') do set "START=%%t"
echo [1/%TOTAL%] Setting up environment...
set "WANT="
for /f "delims=" %%h in ('certutil -hashfile requirements.txt SHA256 ^| findstr /v ":"') do set "WANT=%%h"
set "HAVE="
if exist ".venv\requirements.sha" set /p HAVE=<".venv\requirements.sha"
if exist "%PY%" if "%HAVE%"=="%WANT%" (
  echo       .venv is up to date
  goto ready
)
python -m venv .venv || goto setupfail
"%PY%" -m pip install --quiet -r requirements.txt || goto setupfail
"%PY%" -m pip install --quiet --no-deps -e . || goto setupfail
> ".venv\requirements.sha" echo %WANT%
echo       installed requirements.txt into .venv
goto ready
:setupfail
echo FAILED at stage: Setting up environment 1>&2
exit /b 1

:ready
if "%MODE%"=="test" (
  echo Running tests...
  "%PY%" -m pytest %1 %2 %3 %4 %5 %6 %7 %8 %9
  exit /b !errorlevel!
)

set "COMMON=--run-dir %RUN_DIR% --seed %SEED%"
rem the SAE learns from fresh inputs of the task, not only the 8000 training rows: see README
set "HARVEST_ARGS=--n-samples 310000"

call :stage 2 0 "Generating dataset" data dataset\data_generator.py || exit /b 1
call :stage 3 1 "Training MLP" mlp train_mlp.py || exit /b 1
call :stage 4 2 "Harvesting activations" harvest harvest_activations.py %HARVEST_ARGS% || exit /b 1
call :stage 5 3 "Training sparse autoencoder" sae train_sae.py || exit /b 1
rem the design card's SAE beside the default one: the paper's L1/ReLU architecture, 2048 features
set "EXTRA=--d-sae 2048"
call :stage 6 4 "Training the paper's SAE (relu, 2048 features)" paper train_sae.py --name paper --architecture relu || exit /b 1
set "EXTRA="
call :stage 7 5 "Labelling features of every SAE" labels label_features.py --sae all || exit /b 1
call :stage 8 6 "Probing features" probe feature_probe.py || exit /b 1
call :stage 9 7 "Generating reports" reports feature_reports.py || exit /b 1

for /f %%t in ('powershell -NoProfile -Command "[int][double]::Parse((Get-Date -UFormat %%s))"') do set "END=%%t"
set /a SECONDS=END-START
"%PY%" run_summary.py --run-dir %RUN_DIR% --seconds %SECONDS%
exit /b 0

rem :stage N INDEX "TITLE" KEY SCRIPT [ARGS]
:stage
if %~2 LSS %FROM_INDEX% (
  echo [%~1/%TOTAL%] %~3... skipped ^(--from %FROM%^)
  exit /b 0
)
echo [%~1/%TOTAL%] %~3...
"%PY%" %~5 %COMMON% %6 %7 %8 %9 %EXTRA%
if errorlevel 1 (
  echo FAILED at stage [%~1/%TOTAL%] %~3 ^(fix the error above, then: workflow.bat --from %~4^) 1>&2
  exit /b 1
)
exit /b 0
