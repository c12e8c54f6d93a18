from pwslib.experiments.cli import main

main()
