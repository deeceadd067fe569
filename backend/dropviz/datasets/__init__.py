"""The server's data set catalogue: built-in sets, IDX folders and uploaded CSVs."""
