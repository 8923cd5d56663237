from populator.commands.cli import main

main()
