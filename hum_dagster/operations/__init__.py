"""Operations: lineage audit and the landing folder for new sources."""
