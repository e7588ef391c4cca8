from valuetrack.cli import run

run()
