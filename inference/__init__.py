"""A trained run's folder, loaded to answer questions and caption images.

    from inference import load_run
    run = load_run("data/runs/best")
    run.predict(images=["photo.jpg"], texts=["what is on the table?"], task="vqa")

The folder's layout is `training.run_folder`; `search.predict` is the command over the same loader.
"""

from training.run_folder import RunFolder, RunFolderError, read_run_folder
from inference.load import LoadedRun, load_run

__all__ = ["LoadedRun", "RunFolder", "RunFolderError", "load_run", "read_run_folder"]
