from flask import render_template
from flask_mail import Message

from auth.branding import Brand
from auth.extensions import mail


def send_reset_email(user, link: str, brand: Brand) -> None:
    msg = Message(
        subject=f"Reset your {brand.product_name} password",
        sender=brand.mail_sender,
        recipients=[user.email],
        body=render_template("email/reset.txt", user=user, link=link, brand=brand),
        html=render_template("email/reset.html", user=user, link=link, brand=brand),
    )
    mail.send(msg)
