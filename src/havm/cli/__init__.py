"""The ``havm`` operator command line. Each part registers its own subcommands."""
