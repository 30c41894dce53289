"""RegimeDesk signals."""

__all__: list[str] = []
