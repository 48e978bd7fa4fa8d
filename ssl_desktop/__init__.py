"""The Qt desktop application. All tensor work goes through the ``model`` package."""
