"""The model and its transforms: where it comes from (synthetic or the user's), its hash,
and the files strategies make of it (compressed, sharded, flat)."""
