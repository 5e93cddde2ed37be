"""qtrain: fully quantized training on microcontrollers.

The package is filled in by the model/trainer modules; this file stays light so
`import qtrain` is cheap on a board."""
__version__ = "0.1.0"
