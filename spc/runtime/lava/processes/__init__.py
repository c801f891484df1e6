"""spc's own Lava Processes and their ProcessModels, one module per Process.

Lava's compiler imports every module in this folder (as a file, by its bare name) to find
ProcessModels, so it holds only Process and ProcessModel modules, with no code run at import.
"""
