"""promix_tutorial: ProMix (IJCAI 2023) for learning with noisy labels.

Layers, top to bottom (nothing imports upward): data -> noise -> selection / debias ->
augment -> models -> config -> train -> plots / widgets -> cli.
"""

__version__ = "0.1.0"
