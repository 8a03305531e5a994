"""Labelling tools' exports (COCO, CVAT, Label Studio) as VOC trees: each reader gives ImageRecords of shapes
(shapes.py), which convert_labels.py draws by one overlap rule."""
