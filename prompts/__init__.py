"""RegimeDesk prompts."""

__all__: list[str] = []
