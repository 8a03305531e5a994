"""Prediction: from images to class-id masks and probabilities at the images' own size, and what is made of them
(path: the prediction path of each scale mode; inputs: the batches it reads; sliding: the window of slide mode;
tta: test-time augmentation; outputs: predict.py's files; onnx_model: the ONNX backend; report: get_miou.py's
tables and charts)."""
