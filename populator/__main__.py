from populator.cli import main

main()
