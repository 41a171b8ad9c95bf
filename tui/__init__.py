"""flash-tui: call and watch Runpod serverless and Flash endpoints from the terminal."""

__version__ = "0.1.0"
