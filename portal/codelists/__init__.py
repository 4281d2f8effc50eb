"""Versioned code lists (kategori, åtgärd, karaktär, initiativtagare) for reports and statistics."""
