from django.db import models


class Order(models.Model):  # type: ignore[misc]
    number = models.CharField(max_length=32, unique=True)
    total = models.DecimalField(max_digits=10, decimal_places=2)
