"""The wallet (L5): keys (keystore), coins and sends (wallet), coin selection (coinselect)."""
