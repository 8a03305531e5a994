"""Networks: VGG16 / ResNet50 encoders and the UNet head."""
