from cdpcli.cli import main

main()
