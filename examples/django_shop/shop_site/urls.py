from django.urls import path
from orders import views

from webhookkit.integrations.django.views import jwks_view

urlpatterns = [
    path("orders/", views.create_order),
    path("orders/declined/", views.create_order_then_fail),
    path("hooks/order-created/", views.order_created_hook),
    path(".well-known/jwks.json", jwks_view),
]
